self.__zmanim=function(){var e=document.getElementById("today");if(e)e.textContent=new Date().toDateString()};document.addEventListener("DOMContentLoaded",self.__zmanim);
